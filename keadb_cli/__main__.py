from keadb_cli.cli import main

main()
