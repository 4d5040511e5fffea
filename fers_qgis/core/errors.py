"""Exceptions whose message is a sentence a user can act on."""


class FersError(Exception):
    """Base class: anything the core refuses to do, with a message meant for the user."""


class InputError(FersError):
    """The input raster, mask or parameters cannot be processed as given."""


class Cancelled(FersError):
    """The user cancelled the job; partial outputs have been removed."""
