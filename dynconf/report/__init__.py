"""Plotly figures and static export, shared by the app and the command line."""
