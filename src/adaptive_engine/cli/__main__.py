from adaptive_engine.cli.main import app

app(prog_name="adaptive-engine")
