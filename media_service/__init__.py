"""media_service"""
