"""Pictures of results: overlays (OpenCV) and 3D views (matplotlib, off-screen)."""
