"""The ``keylife`` command line: a thin click layer over the keylife library."""
