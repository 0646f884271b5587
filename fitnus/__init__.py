"""FitNus domain: plain async Python, no web or queue imports."""
