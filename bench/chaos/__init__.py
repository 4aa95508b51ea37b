"""`make chaos`: the whole stack under load while its processes are SIGKILLed (see __main__.py)."""
