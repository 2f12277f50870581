//! Talkover's calendars and their members: create, list and read calendars (with an owner and
//! metadata), add, list and change members (`owner`, `editor`, `viewer`). snake_case fields,
//! `{"success": true, "data": ...}`. A calendar is the native one: made here, it is read natively
//! with the same name, zone, owner and metadata, and the other way round.

use std::collections::BTreeMap;

use poem::web::Data;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use super::TalkoverTags;
use super::errors::TFail;
use crate::auth::{ReadAuth, WriteAuth};
use crate::dialects::native::errors::code::NOT_FOUND;
use crate::dialects::native::errors::{CREATE, CREATE_REFERRING, LIST, READ, UPDATE};
use crate::dialects::native::optional_text;
use crate::domain::details::parse_metadata;
use crate::domain::ids::{CalendarId, MemberId};
use crate::domain::time::Zone;
use crate::domain::violations::{Invalid, Violations};
use crate::payload::JsonBody;
use crate::repo::calendars::{NewCalendar, metadata_of};
use crate::repo::members::Role;
use crate::schema::Timestamp;
use crate::service::members::Membership;
use crate::state::AppState;

/// A new calendar (Talkover's create-calendar body).
#[derive(Object)]
#[oai(rename = "TalkoverCalendarIn", example)]
pub struct TCalendarIn {
    /// Display name, at most 255 characters.
    #[oai(validator(max_length = 255))]
    pub name: String,
    /// IANA time zone (default `UTC`), e.g. `America/New_York`.
    #[oai(validator(max_length = 64))]
    pub timezone: Option<String>,
    /// Id of the calendar's owner (a user of yours), at most 255 characters.
    #[oai(validator(max_length = 255))]
    pub owner_id: String,
    /// Your own keys and values, string to string (at most 50 keys).
    pub metadata: Option<BTreeMap<String, String>>,
}

impl poem_openapi::types::Example for TCalendarIn {
    fn example() -> Self {
        TCalendarIn {
            name: "Sales team".into(),
            timezone: Some("America/New_York".into()),
            owner_id: "user_123".into(),
            metadata: Some(BTreeMap::from([("team".into(), "sales".into())])),
        }
    }
}

/// A calendar as Talkover shows it.
#[derive(Object)]
#[oai(rename = "TalkoverCalendar")]
pub struct TCalendar {
    /// Calendar id (the native calendar's id).
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// IANA time zone.
    pub timezone: String,
    /// Id of the owner; `null` for calendars made without one (natively).
    #[oai(nullable)]
    pub owner_id: Option<String>,
    /// Your own keys and values; `null` when there are none.
    #[oai(nullable)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// When it was created (UTC).
    pub created_at: Timestamp,
}

impl From<entity::calendars::Model> for TCalendar {
    fn from(m: entity::calendars::Model) -> Self {
        let metadata = metadata_of(&m);
        TCalendar {
            id: m.id.0,
            name: m.name,
            timezone: m.timezone,
            owner_id: m.owner_id,
            metadata: (!metadata.is_empty()).then_some(metadata),
            created_at: m.created_at.into(),
        }
    }
}

/// What a member may do on the calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[oai(rename = "TalkoverMemberRole", rename_all = "lowercase")]
pub enum TRole {
    Owner,
    Editor,
    Viewer,
}

impl From<TRole> for Role {
    fn from(r: TRole) -> Self {
        match r {
            TRole::Owner => Role::Owner,
            TRole::Editor => Role::Editor,
            TRole::Viewer => Role::Viewer,
        }
    }
}

impl From<Role> for TRole {
    fn from(r: Role) -> Self {
        match r {
            Role::Owner => TRole::Owner,
            Role::Editor => TRole::Editor,
            Role::Viewer => TRole::Viewer,
        }
    }
}

/// A member to add, or a member's new user and role.
#[derive(Object)]
#[oai(rename = "TalkoverMemberIn")]
pub struct TMemberIn {
    /// Id of the user (one of yours), at most 255 characters; once per calendar.
    #[oai(validator(max_length = 255))]
    pub user_id: String,
    /// `owner`, `editor` or `viewer`: `viewer` when a member is added without one; a change
    /// without one keeps the role.
    pub role: Option<TRole>,
}

/// A member of a calendar.
#[derive(Object)]
#[oai(rename = "TalkoverMember")]
pub struct TMember {
    /// Member id.
    pub id: Uuid,
    /// The calendar.
    pub calendar_id: Uuid,
    /// Id of the user.
    pub user_id: String,
    /// `owner`, `editor` or `viewer`.
    pub role: TRole,
    /// When the member was added (UTC).
    pub added_at: Timestamp,
    /// When the member last changed (UTC).
    pub updated_at: Timestamp,
}

impl From<entity::calendar_members::Model> for TMember {
    fn from(m: entity::calendar_members::Model) -> Self {
        TMember {
            id: m.id.0,
            calendar_id: m.calendar_id.0,
            user_id: m.user_id,
            role: m.role.into(),
            added_at: m.added_at.into(),
            updated_at: m.updated_at.into(),
        }
    }
}

/// One calendar.
#[derive(Object)]
#[oai(rename = "TalkoverCalendarEnvelope")]
pub struct TCalendarEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The calendar.
    pub data: TCalendar,
}

/// The organization's calendars, oldest first.
#[derive(Object)]
#[oai(rename = "TalkoverCalendarList")]
pub struct TCalendarList {
    /// Always `true`.
    pub success: bool,
    /// At most 500 calendars, the oldest first.
    pub data: Vec<TCalendar>,
    /// `true` when the organization has more than 500 calendars and only the first 500 are
    /// listed (the native `GET /v1/calendar/calendars` pages through all of them).
    pub has_more: bool,
}

/// One member.
#[derive(Object)]
#[oai(rename = "TalkoverMemberEnvelope")]
pub struct TMemberEnvelope {
    /// Always `true`.
    pub success: bool,
    /// The member.
    pub data: TMember,
}

/// A calendar's members, the first added first.
#[derive(Object)]
#[oai(rename = "TalkoverMemberList")]
pub struct TMemberList {
    /// Always `true`.
    pub success: bool,
    /// At most 500 members, the first added first.
    pub data: Vec<TMember>,
    /// `true` when the calendar has more than 500 members and only the first 500 are listed.
    pub has_more: bool,
}

#[derive(ApiResponse)]
pub enum CreatedCalendar {
    /// The calendar was created.
    #[oai(status = 201)]
    Created(Json<TCalendarEnvelope>),
}

#[derive(ApiResponse)]
pub enum OneCalendar {
    /// The calendar.
    #[oai(status = 200)]
    Ok(Json<TCalendarEnvelope>),
}

#[derive(ApiResponse)]
pub enum CalendarList {
    /// The calendars.
    #[oai(status = 200)]
    Ok(Json<TCalendarList>),
}

#[derive(ApiResponse)]
pub enum AddedMember {
    /// The member was added.
    #[oai(status = 201)]
    Created(Json<TMemberEnvelope>),
}

#[derive(ApiResponse)]
pub enum OneMember {
    /// The member, changed.
    #[oai(status = 200)]
    Ok(Json<TMemberEnvelope>),
}

#[derive(ApiResponse)]
pub enum MemberList {
    /// The members.
    #[oai(status = 200)]
    Ok(Json<TMemberList>),
}

fn calendar_envelope(m: entity::calendars::Model) -> TCalendarEnvelope {
    TCalendarEnvelope {
        success: true,
        data: m.into(),
    }
}

fn member_envelope(m: entity::calendar_members::Model) -> TMemberEnvelope {
    TMemberEnvelope {
        success: true,
        data: m.into(),
    }
}

fn render_calendar(m: &entity::calendars::Model) -> (u16, String) {
    (201, calendar_envelope(m.clone()).to_json_string())
}

fn render_member(m: &entity::calendar_members::Model) -> (u16, String) {
    (201, member_envelope(m.clone()).to_json_string())
}

/// The body as a new calendar: every problem named at once. Open around the clock until hours
/// are set (availability rules or the native calendar).
fn new_calendar(body: TCalendarIn) -> Result<NewCalendar, Invalid> {
    let mut v = Violations::default();
    let name = body.name.trim().to_string();
    if name.is_empty() {
        v.add("name", "must not be blank");
    }
    let owner_id = optional_text(Some(body.owner_id));
    if owner_id.is_none() {
        v.add("owner_id", "must not be blank");
    }
    let zone = v.check(
        "timezone",
        Zone::parse(body.timezone.as_deref().unwrap_or("UTC")),
    );
    let metadata = body
        .metadata
        .map(|m| parse_metadata(&mut v, "metadata", m))
        .unwrap_or_default();
    v.finish(|| {
        Some(NewCalendar {
            name,
            timezone: zone?,
            description: None,
            working_hours: None,
            date_overrides: Vec::new(),
            owner_id,
            metadata,
            is_default: false,
        })
    })
}

/// The body as a membership.
fn membership(body: TMemberIn) -> Result<Membership, Invalid> {
    let Some(user_id) = optional_text(Some(body.user_id)) else {
        return Err(Invalid::one("user_id", "must not be blank"));
    };
    Ok(Membership {
        user_id,
        role: body.role.map(Into::into),
    })
}

pub struct TalkoverCalendarsApi;

#[OpenApi(prefix_path = "/api/v1/calendars", tag = "TalkoverTags::Talkover")]
impl TalkoverCalendarsApi {
    /// Create a calendar (Talkover)
    ///
    /// `name` (at most 255 characters), `timezone` (IANA, default `UTC`), `owner_id`, and
    /// `metadata` (string to string). The calendar is open around the clock until working hours
    /// are set. Scope: `calendar:write`.
    #[oai(path = "/", method = "post", operation_id = "talkoverCreateCalendar")]
    async fn create(
        &self,
        auth: WriteAuth,
        state: Data<&AppState>,
        /// Makes retries safe: the first response to this key is replayed for 24 hours.
        #[oai(name = "Idempotency-Key", validator(max_length = 255))]
        _idempotency_key: Header<Option<String>>,
        body: JsonBody<TCalendarIn>,
    ) -> Result<CreatedCalendar, TFail<CREATE>> {
        let new = new_calendar(body.0)?;
        let model = state
            .service
            .create_calendar(auth.0.org_id, new, &render_calendar)
            .await?;
        Ok(CreatedCalendar::Created(Json(calendar_envelope(model))))
    }

    /// List calendars (Talkover)
    ///
    /// The organization's calendars, oldest first; at most 500 (`has_more` says when there were
    /// more: the native list pages through all of them). Scope: `calendar:read`.
    #[oai(path = "/", method = "get", operation_id = "talkoverListCalendars")]
    async fn list(
        &self,
        auth: ReadAuth,
        state: Data<&AppState>,
    ) -> Result<CalendarList, TFail<LIST>> {
        let (models, more) = state.service.calendars_listed(auth.0.org_id).await?;
        Ok(CalendarList::Ok(Json(TCalendarList {
            success: true,
            data: models.into_iter().map(Into::into).collect(),
            has_more: more,
        })))
    }

    /// Get a calendar (Talkover)
    ///
    /// Scope: `calendar:read`.
    #[oai(
        path = "/:calendar_id",
        method = "get",
        operation_id = "talkoverGetCalendar"
    )]
    async fn get(
        &self,
        auth: ReadAuth,
        state: Data<&AppState>,
        /// The calendar.
        calendar_id: Path<Uuid>,
    ) -> Result<OneCalendar, TFail<READ>> {
        let model = state
            .service
            .calendar(auth.0.org_id, CalendarId(calendar_id.0))
            .await?;
        Ok(OneCalendar::Ok(Json(calendar_envelope(model))))
    }

    /// List a calendar's members (Talkover)
    ///
    /// The first added first; at most 500 (`has_more` says when there were more).
    /// Scope: `calendar:read`.
    #[oai(
        path = "/:calendar_id/members",
        method = "get",
        operation_id = "talkoverListMembers"
    )]
    async fn members(
        &self,
        auth: ReadAuth,
        state: Data<&AppState>,
        /// The calendar.
        calendar_id: Path<Uuid>,
    ) -> Result<MemberList, TFail<READ>> {
        let (models, more) = state
            .service
            .members(auth.0.org_id, CalendarId(calendar_id.0))
            .await?;
        Ok(MemberList::Ok(Json(TMemberList {
            success: true,
            data: models.into_iter().map(Into::into).collect(),
            has_more: more,
        })))
    }

    /// Add a member (Talkover)
    ///
    /// `user_id` and `role` (`owner`, `editor`, `viewer`; default `viewer`). A user already a
    /// member of the calendar is refused (`VALIDATION_ERROR` on `user_id`). Scope:
    /// `calendar:write`.
    #[oai(
        path = "/:calendar_id/members",
        method = "post",
        operation_id = "talkoverAddMember"
    )]
    async fn add_member(
        &self,
        auth: WriteAuth,
        state: Data<&AppState>,
        /// The calendar.
        calendar_id: Path<Uuid>,
        /// Makes retries safe: the first response to this key is replayed for 24 hours.
        #[oai(name = "Idempotency-Key", validator(max_length = 255))]
        _idempotency_key: Header<Option<String>>,
        body: JsonBody<TMemberIn>,
    ) -> Result<AddedMember, TFail<CREATE_REFERRING>> {
        let who = membership(body.0)?;
        let model = state
            .service
            .add_member(
                auth.0.org_id,
                CalendarId(calendar_id.0),
                who,
                &render_member,
            )
            .await?;
        Ok(AddedMember::Created(Json(member_envelope(model))))
    }

    /// Update a member (Talkover)
    ///
    /// Sets the member's `user_id` and, when given, its `role`. Another member's user is
    /// refused (`VALIDATION_ERROR` on `user_id`). Scope: `calendar:write`.
    #[oai(
        path = "/:calendar_id/members/:member_id",
        method = "put",
        operation_id = "talkoverUpdateMember"
    )]
    async fn update_member(
        &self,
        auth: WriteAuth,
        state: Data<&AppState>,
        /// The calendar.
        calendar_id: Path<Uuid>,
        /// The member.
        member_id: Path<Uuid>,
        body: JsonBody<TMemberIn>,
    ) -> Result<OneMember, TFail<{ UPDATE | NOT_FOUND }>> {
        let who = membership(body.0)?;
        let model = state
            .service
            .update_member(
                auth.0.org_id,
                CalendarId(calendar_id.0),
                MemberId(member_id.0),
                who,
            )
            .await?;
        Ok(OneMember::Ok(Json(member_envelope(model))))
    }
}
