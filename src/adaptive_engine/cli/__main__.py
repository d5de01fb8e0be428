from adaptive_engine.cli.main import main

main()
