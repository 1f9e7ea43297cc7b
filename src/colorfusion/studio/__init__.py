"""colorfusion studio: colorize a photo in the browser and fix its colours with a click.

`colorfusion studio [PHOTO | FOLDER]` starts a local web server and opens the
page (`static/`: plain HTML, CSS and JavaScript modules, no build step, no
network). The page only draws and sends points; every colour decision is a
package call (`inference.suggest`, `Colorizer`, `hints`), so its download
equals `colorfusion colorize PHOTO --hints FILE` pixel for pixel.
docs/studio.md walks through it. The server, in layers:

- `guard`: which requests reach the studio at all, and the headers on every answer;
- `state`: what it holds (`Studio`: photos, hint sessions, the bounded cache, the model's queue);
- `routes`: HTTP -> one call of the state (`build_app`);
- `serving`: the socket and uvicorn (`serve` for the command, `running` for notebooks and tests).

The settings below are read by the server and by the command line (whose
`--help` must not import the web framework).
"""

DEFAULT_HOST = "127.0.0.1"  # local only; another address needs --host and prints a warning
DEFAULT_PORT = 8765  # tried first; when taken, a free port is used (--port N insists on N)
MAX_UPLOAD_MB = 50  # an uploaded file's size limit
MAX_MEGAPIXELS = 100  # a photo's pixel limit (checked from the header before decoding)
CACHE_PHOTOS = 8  # photos held in memory at once (least recently used go first)
MAX_WAITING = 8  # requests waiting for the model behind the one it runs; more: 503, busy
