"""The projection runner and the read models the spec's SQL queries expect: to come."""
