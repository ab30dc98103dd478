"""Write-through Python containers, one module per Redis structure."""
