"""Adds a command-line flag before the command line is parsed."""


def preload(parser):
    parser.add_argument("--outsider-flag", default="unset", help="a flag added by the outsider extension")
