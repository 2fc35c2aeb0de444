"""types stage: the tangent protocol registry (`protocol`), the flattening of registered types at the compiled
boundary (`layout`), and user derivative rules (`rules`)."""
