"""Fast HAAQI and HASPI v2: pyclarity's quality and intelligibility indices on a compiled ear model."""
