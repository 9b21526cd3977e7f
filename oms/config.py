"""Settings of the pipeline, read from the environment (prefix OMS_) and `.env`.

One Settings object holds every knob; the rest of the code asks `get_settings()` rather
than reading the environment, so tests can override a value in one place.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_PATH = Path("var") / "oms.db"
PLATFORMS = ("shopify", "pdd", "taobao", "jd", "douyin", "shopee", "lazada", "amazon", "spreadsheet")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMS_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_SQLITE_PATH}",
        description="SQLAlchemy URL; SQLite (WAL) by default, PostgreSQL in production.",
    )
    # Platforms change an order's update time after we have read a page; looking back a
    # few minutes past the watermark catches those late writers at the cost of re-reading.
    ingest_overlap_minutes: int = 5
    # How far back the first run of a new shop looks.
    initial_lookback_hours: int = 72
    # Ingest walks its window in slices of this length, moving the watermark after each.
    ingest_slice_hours: float = 12.0
    # Orders per clean/validate/store task run.
    batch_size: int = 5000
    # Orders per allocation, shipping and write-back task run.
    fulfil_batch_size: int = 500
    http_timeout_seconds: float = 20.0

    carrier_url: str = "https://sfapi.sf-express.com"
    carrier_partner_id: str = ""
    carrier_checkword: SecretStr = SecretStr("")
    # Prefect global concurrency limit per platform: how many tasks of all workers may
    # talk to one platform at once (`oms limits setup` creates them). Request rates within
    # a task are the connectors' own token buckets.
    platform_concurrency: dict[str, int] = Field(
        default_factory=lambda: dict.fromkeys(PLATFORMS, 4),
        description="JSON object, e.g. {\"shopee\": 2}; platforms left out keep 4.",
    )
    # Column mappings of spreadsheet and till exports, one per source (see the file).
    spreadsheet_sources_path: Path = Path("config/spreadsheet-sources.yaml")
    # Where alerts go (`oms alerts setup`): the channels, each secret named by a variable.
    alerts_config_path: Path = Path("config/alerts.yaml")
    # Warehouse routing rules, daily parcel capacity and rate cards per warehouse.
    routing_rules_path: Path = Path("config/routing.yaml")
    # Ship-by deadline rules per platform and product type (the sla-watch flow).
    sla_rules_path: Path = Path("config/sla.yaml")
    # after-sales: the lifecycle file, and the currencies that are not cross-border
    after_sales_lifecycle_path: Path = Path("config/after_sales.yaml")
    domestic_currencies: tuple[str, ...] = ("CNY",)
    # Carrier rate cards: which carrier takes a parcel, by weight, volume, destination,
    # service level, cost and the carriers each platform accepts.
    carrier_rules_path: Path = Path("config/carriers.yaml")
    # Tracking write-back: a retryable failure (an outage, a rate limit) is tried again
    # this many times, this many minutes apart, before a person is asked to look.
    writeback_retries: int = 3
    writeback_retry_minutes: float = 5.0
    # check-status-drift compares our status with the platform's for orders changed in
    # the last this many hours.
    drift_lookback_hours: float = 72.0
    # The scan endpoint for warehouse scanners (`oms scanner serve`); scanners send the
    # token in the X-Scanner-Token header when one is set.
    scanner_host: str = "127.0.0.1"
    scanner_port: int = 8765
    scanner_token: SecretStr = SecretStr("")
    # Stock. Warehouses count daily parcel capacity by their local day. Unpaid orders
    # hold stock for this many minutes when above 0 (Taobao's "reduce stock when ordered"
    # way); at 0 stock is reserved at payment. Stock sync tells each platform the share of
    # the sellable units given here (JSON object by shop code, 1.0 for shops left out), and
    # lists a shop's items again once its listings are older than the given hours.
    warehouse_timezone: str = "Asia/Shanghai"
    unpaid_hold_minutes: int = 0
    stock_sync_share: dict[str, float] = Field(default_factory=dict)
    listing_refresh_hours: float = 24.0
    # Connector health (`check-connector-health`): failed probes in a row before on-call
    # hears (one failure is usually a blip the next ingest retries through); how long an
    # ingest may fetch nothing while the platform lists orders before that counts as a
    # silent stall; and how many shops are probed at once.
    health_failure_threshold: int = 3
    health_stall_minutes: int = 120
    health_probe_workers: int = 8

    # The token store: Prefect Secret blocks when a Prefect server is configured ("auto"
    # decides from PREFECT_API_URL), else sealed columns of this database.
    token_store: str = Field(default="auto", pattern="^(auto|prefect|database)$")
    # Fernet key sealing tokens and app secrets at rest (base64, 32 bytes); without it a
    # key file is made on first use (fine for the demo, not for production).
    token_key: SecretStr = SecretStr("")
    token_key_file: Path = Path("var") / "token.key"
    # Refresh answers are journaled here before they are stored, so a crash in between
    # never loses a single-use refresh token.
    token_journal_dir: Path = Path("var") / "token-journal"
    # How long one worker may hold a shop's refresh before others may take over (a
    # crashed holder must not block refreshes for longer).
    token_refresh_lease_seconds: float = 60.0

    # Data quality. A batch whose share of failing rows is above this fails its task and
    # alerts (a whole page going bad is a broken mapping or platform change, not bad
    # buyers); so does a fetch whose stored rows differ from the platform's own count.
    quality_max_failure_share: float = 0.2
    # Below this many rows a share says little (1 bad order of 2 is 50%): such batches,
    # like the slices of a quiet shop, are judged row by row only.
    quality_min_rows_for_share: int = 20
    # Daily reconciliation compares each shop's last this many days with the platform.
    reconcile_days: int = 1
    # Order tags and risk holds (picking priority; suspicious orders wait for review).
    tagging_rules_path: Path = Path("config/tagging.yaml")
    # Personal data: raw payloads, review-queue payloads and run logs older than this are
    # deleted by the retention flow.
    retention_days: int = 180

    # carrier accounts (helper A)
    # E-waybill accounts by our carrier code (JSON object; every value is kept secret, so
    # none reaches a log or a repr): which API issues the carrier's numbers ("sf", "zto",
    # "yto", "jdl", "kuaidi100"), its URL and that API's credentials, e.g.
    #   {"ZTO": {"api": "zto", "url": "https://japi.zto.com", "app_key": "...", "app_secret": "..."},
    #    "JT": {"api": "kuaidi100", "url": "https://api.kuaidi100.com", "key": "...", "secret": "...",
    #           "customer": "..."}}
    # SF may instead keep using carrier_url / carrier_partner_id / carrier_checkword above.
    # Cainiao needs no entry: it uses each Taobao shop's own access.
    carrier_accounts: dict[str, dict[str, SecretStr]] = Field(default_factory=dict)
    # end carrier accounts (helper A)

    def concurrency_for(self, platform: str) -> int:
        return self.platform_concurrency.get(platform, 4)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings, after the environment changed (tests, CLI flags)."""
    get_settings.cache_clear()
