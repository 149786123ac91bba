"""What requests do: uploads, downloads and file operations, the same for every front end."""
