"""factory_boy factories shared by every test package."""

from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from conversations.models import Conversation, Message, User
from live.models import LiveSession


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


class LiveSessionFactory(DjangoModelFactory[LiveSession]):
    class Meta:
        model = LiveSession

    user = factory.SubFactory(UserFactory)
    conversation = factory.SubFactory(ConversationFactory, owner=factory.SelfAttribute("..user"))
    model = "gemini-3.1-flash-live-preview"
