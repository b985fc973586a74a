"""Everything that touches AWS, behind the ports."""
