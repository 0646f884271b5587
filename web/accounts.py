from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, EmailStr, Field, StringConstraints

from fitnus.accounts.models import Role, User
from fitnus.accounts.tokens import Principal
from web.keys import ACCOUNTS
from web.routing import Api, Link
from web.schemas import RequestBody, json

api = Api()

Password = Annotated[str, StringConstraints(min_length=8, max_length=256)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class SignupBody(RequestBody):
    email: EmailStr = Field(max_length=254)
    password: Password
    name: Name
    role: Literal["user", "owner"] = "user"


class LoginBody(RequestBody):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=256)


class RefreshBody(RequestBody):
    refresh_token: str = Field(min_length=1, max_length=256)


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: Role


class SignupOut(UserOut):
    welcome_command_id: str = Field(
        description="The command that sends the welcome notification; "
        "GET /api/v1/commands/{id} follows it."
    )


class TokenPairOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme name
    expires_in: int


def user_out(user: User) -> UserOut:
    return UserOut(id=user.id, email=user.email, name=user.name, role=user.role)


@api.route(
    "POST", "/api/v1/auth/signup", tag="accounts", summary="Create a user or owner account",
    body=SignupBody, responses={201: SignupOut}, errors=(400, 409),
    links=(Link(status=201, operation_id="get_command",
                parameters={"command_id": "$response.body#/welcome_command_id"}),),
)
async def signup(request: web.Request, *, body: SignupBody) -> web.Response:
    signed_up = await request.app[ACCOUNTS].signup(
        email=body.email, password=body.password, name=body.name, role=Role(body.role)
    )
    out = SignupOut(
        **user_out(signed_up.user).model_dump(), welcome_command_id=str(signed_up.welcome.id)
    )
    return json(out, 201)


@api.route(
    "POST", "/api/v1/auth/login", tag="accounts", summary="Exchange credentials for tokens",
    body=LoginBody, responses={200: TokenPairOut}, errors=(400, 401, 429),
)
async def login(request: web.Request, *, body: LoginBody) -> web.Response:
    pair = await request.app[ACCOUNTS].login(
        email=body.email, password=body.password, address=request.remote or "unknown"
    )
    return json(TokenPairOut(**pair.__dict__))


@api.route(
    "POST", "/api/v1/auth/refresh", tag="accounts",
    summary="Spend a refresh token for a new pair (a spent token revokes its family)",
    body=RefreshBody, responses={200: TokenPairOut}, errors=(400, 401),
)
async def refresh(request: web.Request, *, body: RefreshBody) -> web.Response:
    pair = await request.app[ACCOUNTS].refresh(refresh_token=body.refresh_token)
    return json(TokenPairOut(**pair.__dict__))


@api.route(
    "POST", "/api/v1/auth/logout", tag="accounts", summary="Revoke a refresh token's family",
    body=RefreshBody, auth=True, responses={204: None}, errors=(400, 401),
)
async def logout(request: web.Request, *, body: RefreshBody, principal: Principal) -> web.Response:
    await request.app[ACCOUNTS].logout(user_id=principal.user_id, refresh_token=body.refresh_token)
    return web.Response(status=204)


@api.route(
    "GET", "/api/v1/me", tag="accounts", summary="The calling account",
    auth=True, responses={200: UserOut}, errors=(401,),
)
async def me(request: web.Request, *, principal: Principal) -> web.Response:
    return json(user_out(await request.app[ACCOUNTS].user(principal.user_id)))
