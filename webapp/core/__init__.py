"""Pieces every app shares: BaseModel, the Job row, ApplicationError and its one mapping to HTTP,
the upload quota handler."""
