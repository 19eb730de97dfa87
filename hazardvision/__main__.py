"""`python -m hazardvision` runs the command line."""

from hazardvision.cli import main

main()
