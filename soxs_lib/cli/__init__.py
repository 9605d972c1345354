"""The ``soxs`` command: its entry point (``console``), sub-commands
(``main``), tables printed on the terminal and the recipe's man page."""
