"""factory_boy factories shared by every test package."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from conversations.models import Conversation, Message, User
from live.models import LiveSession, LiveWorker


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.django.Password("correct horse battery staple")


class ConversationFactory(DjangoModelFactory[Conversation]):
    class Meta:
        model = Conversation

    owner = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Conversation {n}")


class MessageFactory(DjangoModelFactory[Message]):
    """A bare row; use conversations.services.message_create when kind and updated_at must follow."""

    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    role = Message.Role.USER
    message_type = Message.MessageType.REST
    text = factory.Sequence(lambda n: f"message {n}")


class LiveWorkerFactory(DjangoModelFactory[LiveWorker]):
    """Another server process, alive for an hour (pass ``expires_at`` in the past for one that died)."""

    class Meta:
        model = LiveWorker

    name = factory.Sequence(lambda n: f"elsewhere:{n}:test")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))


class LiveSessionFactory(DjangoModelFactory[LiveSession]):
    """A session held, while open, by another live server process (``worker``)."""

    class Meta:
        model = LiveSession

    worker = factory.LazyFunction(lambda: LiveWorkerFactory.create().name)

    user = factory.SubFactory(UserFactory)
    conversation = factory.SubFactory(ConversationFactory, owner=factory.SelfAttribute("..user"))
    model = "gemini-3.1-flash-live-preview"
