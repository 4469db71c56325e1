"""tracks_service"""
