"""Video: tracking (Kalman filter, assignment), alerts from tracked hazards, and their webhooks."""
