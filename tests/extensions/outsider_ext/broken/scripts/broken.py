"""Fails at import: the loader must report it with the extension's name and go on."""

import a_module_that_does_not_exist  # noqa: F401
