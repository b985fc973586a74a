"""Adapters: everything that touches AWS, behind the ports (``parcelhub.ports``)."""
