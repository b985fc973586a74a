"""`make demo`: a day of DTC shipping on the local stack (see ``__main__``)."""
