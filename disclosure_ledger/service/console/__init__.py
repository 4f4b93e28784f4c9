"""The web console: server-rendered Jinja2 pages, no external assets, no JavaScript build
step, a strict Content-Security-Policy."""

from __future__ import annotations

from fastapi import APIRouter

console_router = APIRouter(include_in_schema=False)
