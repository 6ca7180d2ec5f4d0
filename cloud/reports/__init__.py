"""Reports for maintenance and service managers, as HTML and PDF (issue 9).

`router` is mounted by the web page (`prognos serve`) under its authenticated routes.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

__all__ = ["router"]
