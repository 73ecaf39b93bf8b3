"""Labels, clearances, actions and the policy engine. Pure: no I/O, no imports from the
rest of Égide but its errors."""
