from fitnus.cli import main

main()
