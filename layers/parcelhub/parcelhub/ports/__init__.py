"""Ports: the Protocols use cases code against, one per concern, with the value types and errors they
speak. Adapters (``parcelhub.adapters``) implement them; nothing here touches AWS."""
