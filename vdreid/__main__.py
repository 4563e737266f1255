from vdreid.cli.app import main

main()
