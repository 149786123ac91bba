"""Front ends: one session per connection, speaking a protocol over the operations."""
