"""The dashboard's pages, one module per concern: each is an APIRouter that worker/web/dashboard/app.py includes."""
