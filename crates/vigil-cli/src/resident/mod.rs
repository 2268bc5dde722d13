//! The resident CLI (`vigil`): commands over a local vault.
