"""Model signatures: specs, inference from samples, validation of inputs and params."""
