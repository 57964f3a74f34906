"""Streamlit pages and shared widgets: they call the core and render; no SQL, no HTTP."""
