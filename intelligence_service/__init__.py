"""intelligence_service"""
