"""In-memory fakes of the ports, for tests (importable as ``tests.fakes``)."""
