"""Raw configuration: the declared types, YAML loading with positions, secret references."""
