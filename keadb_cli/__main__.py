from keadb_cli.cli.main import main

main()
