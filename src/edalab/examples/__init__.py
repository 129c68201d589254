"""Examples built from edalab's pieces (notebook 12 uses ``shop``)."""
