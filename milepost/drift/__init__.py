"""Configuration drift: the findings of drift checks and the planned changes that explain
them."""
