"""Training hearing-aid models through the simulated listener: a differentiable
intelligibility objective (``objective``) and the training stage (``train``)."""
