"""Pure references that only hold a compiled twin to account: production never runs them,
even on the pure path (where the caller takes another way), so they live with the tests."""
