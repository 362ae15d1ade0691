"""The runtime: one lifespan that opens Redis, loads the brain and runs the configured roles."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import random
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramUnauthorizedError
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bots.callbacks import CallbackSigner
from bots.desk.human import ServiceHumanSide
from bots.desk.notices import CustomerNotices, DeskEcho
from bots.desk.routing import DeskGroup
from bots.desk.scheduler import DeskScheduler
from bots.desk.store import DeskStore
from bots.desk.templates import Templates
from bots.desk.turns import DeskDecider
from bots.health import Health, health_route, supervise
from bots.http_guard import Guard, GuardConfig, http_runner
from bots.pace import CustomerPace, PaceConfig
from bots.redact import install_settings_redaction
from bots.redis_connect import redis_client, wait_until_up
from bots.settings import Settings
from bots.telegram.desk.budget import GroupBudget
from bots.telegram.desk.chat import DeskChat
from bots.telegram.desk.desks import Desks
from bots.telegram.desk.relays import Poster, RelayPool
from bots.telegram.desk.sender import DeskSender
from bots.telegram.desk.summary import DESK_QUEUE_SCAN, SHOWN, DeskSnapshot, QueueLine
from bots.telegram.desk.topics import Topics
from bots.telegram.ingress import TelegramIngress
from bots.telegram.polling import PollingError, TelegramPoller
from bots.telegram.sender import SendLimits, TelegramSender
from bots.telegram.session import telegram_bot
from bots.telegram.updates import ALLOWED_UPDATES
from bots.telegram.webhook import WEBHOOK_PATH, webhook_routes
from bots.trainer.desk import TrainerDesk, TrainerSetup, trainer_ids
from bots.trainer.knowledge import FlowDrafts
from bots.trainer.reload import BrainReloader, request_reload
from bots.trainer.stats import TrainerStats
from bots.turns import Brain, TurnDecider
from bots.vk.channel import VkChannel
from bots.worker import Worker, WorkerConfig
from flows.engine import FlowEngine
from flows.loader import load_flows
from handoff.access import Access
from handoff.api import create_api_app
from handoff.audit import DeadLetters
from handoff.clock import SYSTEM_CLOCK, Clock
from handoff.config import HandoffConfig
from handoff.conversations import ConversationStore, Limits
from handoff.embedded_redis import EmbeddedRedis
from handoff.hours import BusinessHours
from handoff.inbox import Inbox
from handoff.ingest import IngestConfig, Ingestor
from handoff.keys import Keys
from handoff.lease import Lease, owner_token
from handoff.links import Links
from handoff.outbox import OutboxReader
from handoff.queue import QueueItem
from handoff.scripts import Scripts
from handoff.service import HandoffService
from handoff.team_metrics import TEAM
from handoff.tokens import ApiTokens
from nlu.cache import load_or_train
from nlu.data import load_training_data
from nlu.embedded import EmbeddedClassifier
from nlu.rasa import RasaBackend
from nlu.types import NLUBackend

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def load_brain(settings: Settings, progress: Progress | None = None) -> Brain:
    """Read NLU data and flows, train (or load the cached model) and build the engine."""
    say = progress or (lambda _msg: None)
    say(f"reading NLU data from {settings.nlu_data_dir}")
    data = load_training_data(settings.nlu_data_dir)
    say("loading the NLU model (trains when the data changed)")
    classifier, trained = load_or_train(
        data, cache_dir=settings.model_cache_dir, threshold=settings.nlu_threshold
    )
    say(("trained" if trained else "loaded cached") + f" model: {len(data.intents)} intents")
    flows = load_flows(settings.flows_dir)
    engine = FlowEngine(
        flows, language=settings.language,
        misses_before_handoff=settings.misses_before_handoff, rng=random.Random(),
    )
    return Brain(nlu=nlu_backend(settings, classifier, say), engine=engine,
                 language=settings.language)


def nlu_backend(settings: Settings, classifier: EmbeddedClassifier, say: Progress) -> NLUBackend:
    """NLU_BACKEND=rasa: Rasa's /model/parse, with the embedded model while Rasa is down."""
    if settings.nlu_backend != "rasa":
        return classifier
    say(f"NLU through Rasa at {settings.rasa_url} (the embedded model while it does not answer)")
    return RasaBackend(settings.rasa_url, classifier, threshold=settings.nlu_threshold,
                       timeout=settings.rasa_timeout)


@dataclass(frozen=True, slots=True)
class Tuning:
    """Knobs tests and benchmarks turn (production uses the defaults)."""

    send_limits: SendLimits = field(default_factory=SendLimits)
    clock: Clock = SYSTEM_CLOCK  # the handoff's timers (tests move a FakeClock)
    desk_tick: float = 5.0  # seconds between rounds of SLA checks and queue updates
    # The desk's pacing clock (a benchmark compresses time to watch a 15-minute burst)
    desk_clock: Callable[[], float] = time.monotonic
    desk_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    reload_poll: float = 5.0  # seconds between checks for a reload request pub/sub missed
    http_guard: GuardConfig = field(default_factory=GuardConfig)
    customer_pace: PaceConfig = field(default_factory=PaceConfig)


class Runtime:
    def __init__(
        self, settings: Settings, redis: aioredis.Redis, brain: Brain,
        embedded: EmbeddedRedis | None = None, tuning: Tuning = Tuning(),
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.brain = brain
        self.tuning = tuning
        self._embedded = embedded
        self.keys = Keys(settings.redis_prefix)
        self.scripts = Scripts(redis)
        self.store = ConversationStore(
            redis, self.keys, self.scripts, Limits(outbox_maxlen=settings.stream_maxlen,
                                                   journal_maxlen=settings.stream_maxlen,
                                                   transcript_max=settings.transcript_max),
            clock=tuning.clock,
        )
        self.ingestor = Ingestor(
            redis, self.keys, self.scripts,
            IngestConfig(
                settings.ingest_shards, settings.dedup_ttl_seconds, settings.stream_maxlen
            ),
        )
        self.owner = owner_token()
        self._signer: CallbackSigner | None = None
        self.handoff = HandoffService(redis, self.keys, self.scripts, handoff_config(settings),
                                      tuning.clock)
        self.access = Access(redis, self.keys, self.scripts, self.handoff.config, tuning.clock)
        self.templates = Templates(seed_templates(settings.templates_path))
        self.http_routes: list[web.RouteDef] = []  # other channels' endpoints (VK callback)
        self.health = Health()
        self.guard = Guard(
            tuning.http_guard, trusted_proxies=settings.trusted_proxy_addresses,
            api_token=settings.api_token.get_secret_value() if settings.api_token else None)
        self._desk_chats: list[DeskChat] | None = None
        self._relay_bots: list[Bot] = []  # their HTTP sessions are closed with the runtime

    @classmethod
    async def open(
        cls, settings: Settings, *, brain: Brain | None = None, tuning: Tuning = Tuning(),
        progress: Progress | None = None,
    ) -> Runtime:
        install_settings_redaction(settings)  # this runtime's tokens never reach a log line
        redis, embedded, where = redis_client(settings)
        if progress and embedded is not None:
            progress(f"no REDIS_URL: using {where}")
        try:
            await wait_until_up(redis, where, progress)
            if brain is None:
                brain = await asyncio.to_thread(load_brain, settings, progress)
        except BaseException:
            await redis.aclose()
            if embedded:
                embedded.stop()
            raise
        runtime = cls(settings, redis, brain, embedded, tuning)
        await runtime.access.seed({
            "operator": [f"tg:{uid}" for uid in settings.operator_ids],
            "supervisor": [f"tg:{uid}" for uid in settings.supervisor_ids],
            "trainer": [f"tg:{uid}" for uid in settings.trainer_ids],
        })
        await runtime.handoff.shifts.seed(settings.shifts_by_operator())
        freeze_startup_heap()
        return runtime

    async def close(self) -> None:
        await self.redis.aclose()
        if self._embedded is not None:
            self._embedded.stop()

    async def signer(self, max_bytes: int = 64) -> CallbackSigner:
        """Callback signing key: made once, kept in Redis, shared by every process."""
        if self._signer is None:
            key = f"{self.keys.prefix}callback-secret"
            await self.redis.set(key, secrets.token_hex(32), nx=True)
            secret = bytes.fromhex(str(await self.redis.get(key)))
            self._signer = CallbackSigner(secret, self.redis, self.keys, max_bytes=max_bytes)
        return self._signer

    async def worker(self) -> Worker:
        signer = await self.signer()
        human = ServiceHumanSide(
            self.handoff, self.settings.language,
            self.settings.desk_routing() if self.settings.desk_groups else None, self.store)
        worker = Worker(
            self.redis, self.keys, self.scripts, self.store,
            TurnDecider(self.brain, signer, human,
                        desk=self.settings.operator_chat_id is not None,
                        pace=CustomerPace(self.tuning.customer_pace)),
            WorkerConfig(
                shards=self.settings.ingest_shards, lease_ttl=self.settings.lease_seconds
            ),
            self.owner,
        )
        if self.settings.operator_chat_id is not None:
            worker.desk = DeskDecider(
                self.handoff, self.store, signer, self.templates, self.settings.language,
                supervisors=[f"tg:{uid}" for uid in self.settings.supervisor_ids],
                desks=self.settings.desk_routing(), access=self.access,
            )
            worker.desk.trainer = self.trainer_desk()
        if self.settings.vk_enabled and self.settings.telegram_bot_token is not None:
            worker.decider.links = Links(  # a customer may link their Telegram and VK
                self.redis, self.keys, self.scripts, journal_maxlen=self.settings.stream_maxlen,
                transcript_max=self.settings.transcript_max)
        return worker

    # --- the trainers' tools (bots/trainer) ---------------------------------------------
    def trainer_desk(self) -> TrainerDesk:
        setup = TrainerSetup(self.settings.nlu_data_dir,
                             FlowDrafts(self.settings.flow_drafts_path),
                             trainer_ids(self.settings.trainer_ids))
        desk = TrainerDesk(setup, Inbox(self.redis, self.keys), self.store, self.templates,
                           self.request_reload)
        desk.access = self.access
        return desk

    async def request_reload(self, by: str, reply_to: str = "") -> int:
        return await request_reload(self.redis, self.keys, by=by, reply_to=reply_to)

    def request_reload_soon(self, by: str) -> None:
        """For a signal handler: the request is sent from a task."""
        self._reload_request = asyncio.get_running_loop().create_task(self.request_reload(by))

    def reloader(self, worker: Worker) -> BrainReloader:
        def swap(brain: Brain) -> None:
            self.brain = brain
            worker.decider.brain = brain

        return BrainReloader(self.redis, self.keys, self.settings, load_brain, swap,
                             self.store.report_to_desk, poll=self.tuning.reload_poll)

    async def run(self, stop: asyncio.Event, roles: set[str]) -> None:
        """Every configured channel until `stop`; the worker and the desk scheduler run once."""
        telegram = self.settings.telegram_bot_token is not None
        if not self.settings.vk_enabled:
            return await self.run_telegram(stop, roles)
        if not telegram:
            return await self.run_vk(stop, roles, worker=True, http=True)
        vk = self.vk_channel()
        self.http_routes.extend(vk.routes())  # the Callback API on the same HTTP server
        tasks = [asyncio.create_task(self.run_telegram(stop, roles), name="telegram"),
                 asyncio.create_task(self.run_vk(stop, roles, channel=vk), name="vk")]
        try:
            await _until_stopped_or_failed(stop, tasks)
        finally:
            stop.set()
            await asyncio.wait(tasks)
        for task in tasks:
            task.result()

    # --- VK -----------------------------------------------------------------------------
    def vk_channel(self) -> VkChannel:
        return VkChannel(self.settings, self.ingestor, self.store, self.redis, self.keys,
                         self.scripts, self.owner)

    async def run_vk(self, stop: asyncio.Event, roles: set[str], *, worker: bool = False,
                     http: bool = False, channel: VkChannel | None = None) -> None:
        """VK's roles; `worker` and `http` when Telegram (which runs those) is not on."""
        vk = channel or self.vk_channel()
        telegram = self.telegram_bot() if self.settings.telegram_bot_token else None
        tasks: list[asyncio.Task[None]] = []
        runner: web.AppRunner | None = None
        try:
            if "ingress" in roles:
                poller = vk.poller()
                if poller is not None:
                    tasks.append(self._role("vk-poller", poller.run, stop))
                if http:
                    self.http_routes.extend(vk.routes())
                    runner = http_runner(self.http_app())
                    await _serve_http(runner, self.settings)
            if "worker" in roles and worker:
                tasks.append(self._role("worker", (await self.worker()).run, stop))
            if "sender" in roles:
                signer = await self.signer()
                tasks.append(self._role(
                    "vk-sender", lambda stop: vk.sender(signer, telegram).run(stop), stop))
            await _until_stopped_or_failed(stop, tasks)
        finally:
            stop.set()
            await _shut_down(tasks)
            if runner is not None:
                await runner.cleanup()
            if telegram is not None:
                await telegram.session.close()
            vk.close()

    async def _metrics(self, _request: web.Request) -> web.Response:
        await TEAM.refresh(self.handoff, self.handoff.clock.now())
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    def http_app(self) -> web.Application:
        """/metrics, /healthz, the HTTP API when enabled, and other channels' endpoints."""
        app = web.Application(middlewares=[self.guard.middleware()])
        app.router.add_get("/metrics", self._metrics)
        app.add_routes([health_route(self.health, self.redis)])
        if self.settings.api_token is not None:
            app.add_subapp("/api/v1", create_api_app(
                self.handoff, self.store, token=self.settings.api_token.get_secret_value(),
                notices=CustomerNotices(self.settings.language),
                stats=TrainerStats(self.redis, self.keys),
                desk=DeskEcho() if self.settings.operator_chat_id is not None else None,
                dead_letters=DeadLetters(self.redis, self.keys, self.scripts,
                                         self.settings.ingest_shards, self.settings.stream_maxlen,
                                         self.handoff.config.journal_maxlen),
                tokens=ApiTokens(self.redis, self.keys), access=self.access))
        app.add_routes(self.http_routes)
        return app

    # --- Telegram -----------------------------------------------------------------------
    def telegram_bot(self) -> Bot:
        token = self.settings.telegram_bot_token
        if token is None:
            raise RuntimeError("TELEGRAM_BOT_TOKEN is not set")
        return telegram_bot(token.get_secret_value(), self.settings.telegram_api_url)

    async def run_telegram(self, stop: asyncio.Event, roles: set[str]) -> None:
        """Run the roles (`ingress`, `worker`, `sender`) until `stop` is set."""
        bot = self.telegram_bot()
        tasks: list[asyncio.Task[None]] = []
        runner: web.AppRunner | None = None
        try:
            if "ingress" in roles:
                runner = await self._start_ingress(bot, stop, tasks)
            if "worker" in roles:
                worker = await self.worker()
                if worker.desk is not None:  # commands may be addressed /take@this_bot
                    worker.desk.bot_username = (await bot.me()).username or ""
                tasks.append(self._role("worker", worker.run, stop))
                tasks.append(self._role("reload", self.reloader(worker).run, stop))
                if self.settings.operator_chat_id is not None:
                    tasks.append(self._role(
                        "desk-scheduler", lambda stop: self.scheduler().run(stop), stop))
            if "sender" in roles:
                async def send(stop: asyncio.Event) -> None:
                    await (await self.telegram_sender(bot)).run(stop)

                tasks.append(self._role("sender", send, stop))
            await _until_stopped_or_failed(stop, tasks)
        finally:
            stop.set()
            await _shut_down(tasks)
            if runner is not None:
                await runner.cleanup()
            await bot.session.close()
            for relay in self._relay_bots:
                await relay.session.close()
            self._relay_bots.clear()

    def _role(self, name: str, run: Callable[[asyncio.Event], Awaitable[None]],
              stop: asyncio.Event) -> asyncio.Task[None]:
        """A role that outlives its failures (bots/health.py)."""
        return asyncio.create_task(supervise(name, run, stop, self.health), name=name)

    async def telegram_sender(self, bot: Bot) -> TelegramSender:
        """A fresh sender (and desk sender) for each run: one at a time per bot token."""
        lease = Lease(self.redis, self.scripts, self.keys.lease(f"sender:tg:{bot.id}"),
                      ttl=self.settings.lease_seconds, owner=self.owner)
        sender = TelegramSender(bot, OutboxReader(self.redis, self.keys, "tg"), self.store,
                                await self.signer(), self.tuning.send_limits, lease=lease)
        sender.desk = await self._desk_sender(bot, sender)
        return sender

    def scheduler(self) -> DeskScheduler:
        lease = Lease(self.redis, self.scripts, self.keys.lease("desk-scheduler"),
                      ttl=self.settings.lease_seconds, owner=self.owner)
        return DeskScheduler(
            self.handoff, self.store, lease, supervisors=self.settings.supervisor_ids,
            language=self.settings.language, auto_assign=self.settings.auto_assign,
            tick=self.tuning.desk_tick, access=self.access,
        )

    async def _desk_sender(self, bot: Bot, sender: TelegramSender) -> Desks | None:
        """A DeskSender per desk group, each with budgets of its own for the main bot and the
        relays (Telegram's limits are per bot and per group)."""
        chats = self.desk_chats()
        if not chats:
            return None
        relays = await self._relays()
        routing = self.settings.desk_routing()
        senders = {}
        for desk, chat in zip(routing.desks, chats, strict=True):
            pool = RelayPool(Poster(bot, self._group_budget(), "main", relay=False),
                             [Poster(relay, self._group_budget(), name)
                              for relay, name in relays])
            senders[desk.chat_id] = DeskSender(
                bot, self.redis, self.keys, self.store, await self.signer(),
                Topics(pool, chat), functools.partial(self.desk_snapshot, desk.chat_id),
                sender.ack, may_send=sender.may_send, clock=self.tuning.desk_clock,
                sleep=self.tuning.desk_sleep, timezone=self.settings.timezone,
                desk=desk)
        return Desks(senders, routing, chats[0].store, self.store)

    def _group_budget(self) -> GroupBudget:
        """One bot's budget in the desk group (Telegram's limits are per bot)."""
        limits = self.tuning.send_limits
        return GroupBudget(limits.per_group_per_minute, limits.desk_per_second,
                           clock=self.tuning.desk_clock, sleep=self.tuning.desk_sleep)

    async def _relays(self) -> list[tuple[Bot, str]]:
        """The relay bots of the desk and their @usernames; a token Telegram rejects is
        reported at start and left out."""
        relays = []
        for token in self.settings.relay_tokens:
            relay = telegram_bot(token, self.settings.telegram_api_url)
            try:
                me = await relay.get_me()
            except TelegramAPIError as exc:
                log.error("desk relay %s… left out: %s", token.split(":", 1)[0], exc.message)
                await relay.session.close()
                continue
            self._relay_bots.append(relay)
            relays.append((relay, f"@{me.username}"))
        if relays:
            log.info("desk relays: %s", ", ".join(name for _, name in relays))
        return relays

    def desk_chats(self) -> list[DeskChat]:
        """Every desk group's id (the configured one, or the supergroup it migrated to), the
        first desk first; none without a desk."""
        if self._desk_chats is None:  # one per process: its sender and ingress agree at once
            store = DeskStore(self.redis, self.keys)
            self._desk_chats = [
                DeskChat(store.of_desk(None if number == 0 else desk.chat_id), desk.chat_id)
                for number, desk in enumerate(self.settings.desk_groups)]
        return self._desk_chats

    def desk_chat(self) -> DeskChat | None:
        """The first desk group's id."""
        chats = self.desk_chats()
        return chats[0] if chats else None

    async def desk_snapshot(self, desk: int | None = None) -> DeskSnapshot:
        """What the queue summary in a desk's General topic shows: that desk's queue (with
        several desks, the others' lengths too, for supervisors)."""
        desks = self.settings.desk_groups
        if desk is None or len(desks) < 2:
            items = await self.handoff.queue(limit=SHOWN)
            queued, others = await self.handoff.queue_length(), dict[str, int]()
        else:
            items, queued, others = await self._desk_queue(desk, desks)
        profiles = await self.store.profiles([item.conv for item in items])
        lines = [
            QueueLine(item.conv, profile.display_name if profile else item.conv, item.priority,
                      item.reason, item.queued_at, item.escalated)
            for item, profile in zip(items, profiles, strict=True)
        ]
        operators = await self.handoff.operators()
        online = [o.name or o.id for o in operators if o.status == "online"]
        return DeskSnapshot(lines, sum(o.load for o in operators), online, queued, others)

    async def _desk_queue(self, desk: int, desks: list[DeskGroup]
                          ) -> tuple[list[QueueItem], int, dict[str, int]]:
        """One desk's part of the queue (its first SHOWN, its length) and the other desks'
        lengths. A conversation not routed yet counts for the first desk."""
        items = await self.handoff.queue(limit=DESK_QUEUE_SCAN)
        routed = await DeskStore(self.redis, self.keys).desks_of([i.conv for i in items])
        counts = {d.chat_id: 0 for d in desks}
        mine = []
        for item, owner in zip(items, routed, strict=True):
            owner = owner if owner in counts else desks[0].chat_id
            counts[owner] += 1
            if owner == desk:
                mine.append(item)
        others = {d.name: counts[d.chat_id] for d in desks if d.chat_id != desk}
        return mine[:SHOWN], counts[desk], others

    async def _start_ingress(
        self, bot: Bot, stop: asyncio.Event, tasks: list[asyncio.Task[None]]
    ) -> web.AppRunner:
        me = await bot.get_me()
        log.info("Telegram bot @%s (id %d)", me.username, me.id)
        ingress = TelegramIngress(self.ingestor, me.id, desks=self.desk_chats())
        app = self.http_app()
        runner = http_runner(app)
        if self.settings.telegram_mode == "webhook":
            secret = self.settings.telegram_webhook_secret
            if self.settings.telegram_webhook_url is None or secret is None:
                raise RuntimeError(
                    "webhook mode needs TELEGRAM_WEBHOOK_URL and TELEGRAM_WEBHOOK_SECRET"
                )
            app.add_routes(webhook_routes(ingress, secret.get_secret_value()))
            await _serve_http(runner, self.settings)  # ready before Telegram is told the URL
            await bot.set_webhook(
                self.settings.telegram_webhook_url.rstrip("/") + WEBHOOK_PATH,
                secret_token=secret.get_secret_value(), allowed_updates=ALLOWED_UPDATES,
            )
        else:
            await bot.delete_webhook(drop_pending_updates=False)
            lease = Lease(self.redis, self.scripts, self.keys.lease(f"tg-poll:{me.id}"),
                          ttl=self.settings.lease_seconds, owner=self.owner)
            poller = TelegramPoller(
                self.settings.telegram_api_url, bot.token, ingress, lease,
                timeout=self.settings.telegram_poll_timeout,
            )
            tasks.append(self._role("poller", poller.run, stop))
            await _serve_http(runner, self.settings)
        if self.desk_chats():
            for token in self.settings.relay_tokens:
                tasks.append(self._role(f"relay-poller:{token.split(':', 1)[0]}",
                                        functools.partial(self._poll_relay, token), stop))
        return runner

    async def _poll_relay(self, token: str, stop: asyncio.Event) -> None:
        """Presses on the cards a desk relay posted reach only that relay: poll them (in both
        modes; a relay has no webhook of its own). A token Telegram rejects is reported and
        left alone until a restart: the desk goes on with the other bots."""
        relay = telegram_bot(token, self.settings.telegram_api_url)
        try:
            me = await relay.get_me()
            await relay.delete_webhook(drop_pending_updates=False)
        except TelegramUnauthorizedError as exc:
            log.error("desk relay %s…: its presses are not polled: %s",
                      token.split(":", 1)[0], exc.message)
            await stop.wait()
            return
        finally:
            await relay.session.close()
        lease = Lease(self.redis, self.scripts, self.keys.lease(f"tg-poll:{me.id}"),
                      ttl=self.settings.lease_seconds, owner=self.owner)
        poller = TelegramPoller(
            self.settings.telegram_api_url, token,
            TelegramIngress(self.ingestor, me.id, desks=self.desk_chats(), relay=True), lease,
            timeout=self.settings.telegram_poll_timeout, allowed_updates=["callback_query"],
            name=f"desk relay @{me.username}")
        try:
            await poller.run(stop)
        except PollingError as exc:
            log.error("%s; its presses are no longer polled", exc)
            await stop.wait()


def freeze_startup_heap() -> None:
    """Keep the cyclic GC away from what start-up built (libraries, model, flows).

    A full collection over aiogram's models and the classifier took 100-200 ms here, which
    showed up as the p99 of reply latency; frozen objects are never scanned again.
    """
    gc.collect()
    gc.freeze()


SHIPPED_TEMPLATES = Path(__file__).parent / "desk" / "templates.yml"


def seed_templates(path: Path) -> Path:
    """First start: the operators' file begins as a copy of the shipped examples (theirs to
    edit from the desk afterwards; an existing file is never overwritten)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHIPPED_TEMPLATES, path)
    return path


def handoff_config(settings: Settings) -> HandoffConfig:
    hours = None
    if settings.business_hours or settings.holidays:
        hours = BusinessHours.parse(settings.business_hours or "mon-sun 00:00-24:00",
                                    settings.timezone, settings.holidays)
    return HandoffConfig(
        default_capacity=settings.operator_capacity,
        offline_grace_seconds=settings.offline_grace_minutes * 60,
        unclaimed_minutes=settings.sla_unclaimed_minutes,
        reply_minutes=settings.sla_reply_minutes, hours=hours, timezone=settings.timezone,
        desk_hours=settings.desk_hours_by_chat(), ladder_minutes=settings.sla_ladder_minutes,
        journal_maxlen=settings.stream_maxlen, outbox_maxlen=settings.stream_maxlen,
        transcript_max=settings.transcript_max,
    )


async def _shut_down(tasks: list[asyncio.Task[None]]) -> None:
    """Roles see `stop` and finish what is on the wire; whatever still runs after a grace
    period is cancelled (its work stays unacknowledged in Redis for the next process)."""
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=3.0)
    for task in pending:
        task.cancel()
    if pending:
        _done, stuck = await asyncio.wait(pending, timeout=5.0)
        for task in stuck:
            log.error("shutdown: %s did not stop", task.get_name())
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("shutdown: %s had failed: %r", task.get_name(), task.exception())


async def _until_stopped_or_failed(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    waiter = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    for task in done:
        if task is not waiter and not task.cancelled():
            with contextlib.suppress(asyncio.CancelledError):
                task.result()  # re-raise a role's fatal error


async def _serve_http(runner: web.AppRunner, settings: Settings) -> None:
    await runner.setup()
    await web.TCPSite(runner, settings.http_host, settings.http_port).start()
    log.info("HTTP on %s:%d", settings.http_host, settings.http_port)



