"""factory_boy factories shared by the whole suite."""

from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from conversations.models import Conversation, Message, User


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("a-good-password-1")


class ConversationFactory(DjangoModelFactory[Conversation]):
    class Meta:
        model = Conversation

    owner = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Conversation {n}")


class MessageFactory(DjangoModelFactory[Message]):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    role = Message.Role.USER
    message_type = Message.MessageType.REST
    text = factory.Sequence(lambda n: f"Message {n}")
