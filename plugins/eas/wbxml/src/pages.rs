//! The [MS-ASWBXML] code pages 0–24: tag names, tokens and namespaces.
//!
//! Tag names are the XML element names of the ActiveSync schemas (what [MS-ASCMD] and the
//! per-class specifications write, e.g. `Email:Cc`, `Calendar:OrganizerEmail`,
//! `Tasks:Type`); tokens are the 6-bit values of [MS-ASWBXML] section 2.1.2.1. Tags defined
//! only for protocol version 2.5 (e.g. the pre-AirSyncBase `Body`/`BodySize` tokens) are
//! deliberately absent: we do not speak 2.5, and a 2.5 token is rejected as unknown.
//!
//! Cross-checks: the [MS-ASWBXML] section 3 example (AirSync, AirSyncBase and Contacts
//! tokens, byte for byte, see `tests/fixtures/`), the specification's own tables for pages 10
//! (ResolveRecipients) and 12 (Contacts2), and independent published enumerations of pages 0,
//! 1, 2, 4, 9, 17 and 22. Where sources disagree on a *name* (never on a token) the schema
//! element name wins, e.g. `Calendar:Timezone` but `Email:TimeZone`, `Tasks:Type` rather than
//! `Recurrence_Type`.
//!
//! Every page is a static table sorted by token plus a 64-entry token index built at compile
//! time, so token → tag is one array access and tag → token a scan of at most ~60 names.
//! The constants in [`crate::tags`] are the cheap way to name a tag in code.

use std::fmt;

/// Number of code pages defined by [MS-ASWBXML] that this crate knows (0–24).
pub const PAGE_COUNT: usize = 25;

/// One WBXML code page: a number, a name, an XML namespace and its tag tokens.
#[derive(Debug)]
pub struct CodePage {
    number: u8,
    name: &'static str,
    namespace: &'static str,
    tags: &'static [(u8, &'static str)],
    by_token: [u8; 64],
}

impl CodePage {
    /// The page number used by SWITCH_PAGE.
    pub fn number(&self) -> u8 {
        self.number
    }

    /// The page name as [MS-ASWBXML] titles it, e.g. `AirSync`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The XML namespace of the page's tags, e.g. `AirSync:`.
    pub fn namespace(&self) -> &'static str {
        self.namespace
    }

    /// All `(token, tag name)` pairs of the page, sorted by token.
    pub fn tags(&self) -> &'static [(u8, &'static str)] {
        self.tags
    }

    /// The tag name for a token (without the content/attribute bits), if the page defines it.
    pub fn tag_name(&self, token: u8) -> Option<&'static str> {
        let slot = *self.by_token.get(usize::from(token))?;
        if slot == 0 {
            return None;
        }
        self.tags.get(usize::from(slot) - 1).map(|&(_, name)| name)
    }

    /// The token for a tag name, if the page defines it.
    pub fn token(&self, name: &str) -> Option<u8> {
        self.tags
            .iter()
            .find(|&&(_, n)| n == name)
            .map(|&(token, _)| token)
    }
}

/// The code page with this number, if [MS-ASWBXML] defines it (0–24).
pub fn page(number: u8) -> Option<&'static CodePage> {
    PAGES.get(usize::from(number))
}

/// The code page with this name (`AirSync`, `Email`, …) or namespace (`AirSync:`).
pub fn page_named(name: &str) -> Option<&'static CodePage> {
    PAGES.iter().find(|p| p.name == name || p.namespace == name)
}

/// All code pages, indexed by number.
pub fn pages() -> &'static [CodePage] {
    &PAGES
}

/// A resolved ActiveSync tag: a code page and a token that page defines.
///
/// A `Tag` is always valid (constructors check against the tables), so [`Tag::name`] and
/// [`Tag::namespace`] never fail. Compare tags with `==`; names alone are ambiguous across
/// pages (`AirSync:Status` vs `AirSyncBase:Status`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    page: u8,
    token: u8,
}

impl Tag {
    /// Used by the generated constants only: the tables guarantee validity.
    const fn known(page: u8, token: u8) -> Tag {
        Tag { page, token }
    }

    /// The tag for `token` on code page `page`, if that page defines it.
    pub fn from_token(page: u8, token: u8) -> Option<Tag> {
        self::page(page)?.tag_name(token)?;
        Some(Tag { page, token })
    }

    /// The tag named `name` on the page named `page` (page name or namespace:
    /// `Tag::named("AirSync", "Sync")`).
    pub fn named(page: &str, name: &str) -> Option<Tag> {
        let p = page_named(page)?;
        Some(Tag {
            page: p.number,
            token: p.token(name)?,
        })
    }

    /// The code page number.
    pub fn page(self) -> u8 {
        self.page
    }

    /// The token (6 bits, without the content and attribute flags).
    pub fn token(self) -> u8 {
        self.token
    }

    /// The code page this tag belongs to.
    pub fn code_page(self) -> &'static CodePage {
        // Valid by construction; the fallback is unreachable but keeps this panic-free.
        self::page(self.page).unwrap_or(&PAGES[0])
    }

    /// The element name, e.g. `Sync`.
    pub fn name(self) -> &'static str {
        self.code_page().tag_name(self.token).unwrap_or("?")
    }

    /// The namespace of the tag's page, e.g. `AirSync:`.
    pub fn namespace(self) -> &'static str {
        self.code_page().namespace
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.namespace(), self.name())
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.namespace(), self.name())
    }
}

/// Builds the token → position index at compile time; a duplicate or out-of-range token in
/// the tables below is a compile error.
const fn index(tags: &[(u8, &str)]) -> [u8; 64] {
    let mut out = [0u8; 64];
    let mut i = 0;
    while i < tags.len() {
        let token = tags[i].0 as usize;
        assert!(token >= 0x05 && token <= 0x3F, "tag token out of range");
        assert!(out[token] == 0, "duplicate tag token");
        out[token] = (i + 1) as u8;
        i += 1;
    }
    out
}

macro_rules! code_pages {
    ($(
        $(#[$pdoc:meta])*
        $num:literal $module:ident $name:literal $ns:literal {
            $($tok:literal $tag:ident),* $(,)?
        }
    )*) => {
        static PAGES: [CodePage; PAGE_COUNT] = [$(
            CodePage {
                number: $num,
                name: $name,
                namespace: $ns,
                tags: &[$(($tok, stringify!($tag))),*],
                by_token: index(&[$(($tok, stringify!($tag))),*]),
            }
        ),*];

        /// Constants for every tag of every code page, named as the schema names them:
        /// `tags::airsync::Sync`, `tags::airsyncbase::Body`.
        #[allow(non_upper_case_globals)]
        pub mod tags {
            $(
                $(#[$pdoc])*
                pub mod $module {
                    $(
                        #[doc = concat!("`", $ns, stringify!($tag), "`, token ", stringify!($tok), ".")]
                        pub const $tag: crate::Tag = crate::Tag::known($num, $tok);
                    )*
                }
            )*
        }
    };
}

code_pages! {
    /// Code page 0, `AirSync:` ([MS-ASWBXML] 2.1.2.1.1).
    0 airsync "AirSync" "AirSync:" {
        0x05 Sync, 0x06 Responses, 0x07 Add, 0x08 Change, 0x09 Delete, 0x0A Fetch,
        0x0B SyncKey, 0x0C ClientId, 0x0D ServerId, 0x0E Status, 0x0F Collection,
        0x10 Class, 0x12 CollectionId, 0x13 GetChanges, 0x14 MoreAvailable,
        0x15 WindowSize, 0x16 Commands, 0x17 Options, 0x18 FilterType, 0x1B Conflict,
        0x1C Collections, 0x1D ApplicationData, 0x1E DeletesAsMoves, 0x20 Supported,
        0x21 SoftDelete, 0x22 MIMESupport, 0x23 MIMETruncation, 0x24 Wait, 0x25 Limit,
        0x26 Partial, 0x27 ConversationMode, 0x28 MaxItems, 0x29 HeartbeatInterval,
    }
    /// Code page 1, `Contacts:` ([MS-ASWBXML] 2.1.2.1.2; names as in [MS-ASCNTC]).
    1 contacts "Contacts" "Contacts:" {
        0x05 Anniversary, 0x06 AssistantName, 0x07 AssistantPhoneNumber, 0x08 Birthday,
        0x0C Business2PhoneNumber, 0x0D BusinessAddressCity, 0x0E BusinessAddressCountry,
        0x0F BusinessAddressPostalCode, 0x10 BusinessAddressState,
        0x11 BusinessAddressStreet, 0x12 BusinessFaxNumber, 0x13 BusinessPhoneNumber,
        0x14 CarPhoneNumber, 0x15 Categories, 0x16 Category, 0x17 Children, 0x18 Child,
        0x19 CompanyName, 0x1A Department, 0x1B Email1Address, 0x1C Email2Address,
        0x1D Email3Address, 0x1E FileAs, 0x1F FirstName, 0x20 Home2PhoneNumber,
        0x21 HomeAddressCity, 0x22 HomeAddressCountry, 0x23 HomeAddressPostalCode,
        0x24 HomeAddressState, 0x25 HomeAddressStreet, 0x26 HomeFaxNumber,
        0x27 HomePhoneNumber, 0x28 JobTitle, 0x29 LastName, 0x2A MiddleName,
        0x2B MobilePhoneNumber, 0x2C OfficeLocation, 0x2D OtherAddressCity,
        0x2E OtherAddressCountry, 0x2F OtherAddressPostalCode, 0x30 OtherAddressState,
        0x31 OtherAddressStreet, 0x32 PagerNumber, 0x33 RadioPhoneNumber, 0x34 Spouse,
        0x35 Suffix, 0x36 Title, 0x37 WebPage, 0x38 YomiCompanyName, 0x39 YomiFirstName,
        0x3A YomiLastName, 0x3C Picture, 0x3D Alias, 0x3E WeightedRank,
    }
    /// Code page 2, `Email:` ([MS-ASWBXML] 2.1.2.1.3; names as in [MS-ASEMAIL]).
    2 email "Email" "Email:" {
        0x0F DateReceived, 0x11 DisplayTo, 0x12 Importance, 0x13 MessageClass,
        0x14 Subject, 0x15 Read, 0x16 To, 0x17 Cc, 0x18 From, 0x19 ReplyTo,
        0x1A AllDayEvent, 0x1B Categories, 0x1C Category, 0x1D DtStamp, 0x1E EndTime,
        0x1F InstanceType, 0x20 BusyStatus, 0x21 Location, 0x22 MeetingRequest,
        0x23 Organizer, 0x24 RecurrenceId, 0x25 Reminder, 0x26 ResponseRequested,
        0x27 Recurrences, 0x28 Recurrence, 0x29 Type, 0x2A Until, 0x2B Occurrences,
        0x2C Interval, 0x2D DayOfWeek, 0x2E DayOfMonth, 0x2F WeekOfMonth,
        0x30 MonthOfYear, 0x31 StartTime, 0x32 Sensitivity, 0x33 TimeZone,
        0x34 GlobalObjId, 0x35 ThreadTopic, 0x39 InternetCPID, 0x3A Flag,
        0x3B FlagStatus, 0x3C ContentClass, 0x3D FlagType, 0x3E CompleteTime,
        0x3F DisallowNewTimeProposal,
    }
    /// Code page 3, `AirNotify:` ([MS-ASWBXML] 2.1.2.1.4): no longer in use, no tags.
    3 airnotify "AirNotify" "AirNotify:" {}
    /// Code page 4, `Calendar:` ([MS-ASWBXML] 2.1.2.1.5; names as in [MS-ASCAL]).
    4 calendar "Calendar" "Calendar:" {
        0x05 Timezone, 0x06 AllDayEvent, 0x07 Attendees, 0x08 Attendee, 0x09 Email,
        0x0A Name, 0x0D BusyStatus, 0x0E Categories, 0x0F Category, 0x11 DtStamp,
        0x12 EndTime, 0x13 Exception, 0x14 Exceptions, 0x15 Deleted,
        0x16 ExceptionStartTime, 0x17 Location, 0x18 MeetingStatus, 0x19 OrganizerEmail,
        0x1A OrganizerName, 0x1B Recurrence, 0x1C Type, 0x1D Until, 0x1E Occurrences,
        0x1F Interval, 0x20 DayOfWeek, 0x21 DayOfMonth, 0x22 WeekOfMonth,
        0x23 MonthOfYear, 0x24 Reminder, 0x25 Sensitivity, 0x26 Subject, 0x27 StartTime,
        0x28 UID, 0x29 AttendeeStatus, 0x2A AttendeeType, 0x33 DisallowNewTimeProposal,
        0x34 ResponseRequested, 0x35 AppointmentReplyTime, 0x36 ResponseType,
        0x37 CalendarType, 0x38 IsLeapMonth, 0x39 FirstDayOfWeek,
        0x3A OnlineMeetingConfLink, 0x3B OnlineMeetingExternalLink, 0x3C ClientUid,
    }
    /// Code page 5, `Move:` ([MS-ASWBXML] 2.1.2.1.6).
    5 moves "Move" "Move:" {
        0x05 MoveItems, 0x06 Move, 0x07 SrcMsgId, 0x08 SrcFldId, 0x09 DstFldId,
        0x0A Response, 0x0B Status, 0x0C DstMsgId,
    }
    /// Code page 6, `GetItemEstimate:` ([MS-ASWBXML] 2.1.2.1.7).
    6 getitemestimate "GetItemEstimate" "GetItemEstimate:" {
        0x05 GetItemEstimate, 0x06 Version, 0x07 Collections, 0x08 Collection,
        0x09 Class, 0x0A CollectionId, 0x0B DateTime, 0x0C Estimate, 0x0D Response,
        0x0E Status,
    }
    /// Code page 7, `FolderHierarchy:` ([MS-ASWBXML] 2.1.2.1.8).
    7 folderhierarchy "FolderHierarchy" "FolderHierarchy:" {
        0x07 DisplayName, 0x08 ServerId, 0x09 ParentId, 0x0A Type, 0x0C Status,
        0x0E Changes, 0x0F Add, 0x10 Delete, 0x11 Update, 0x12 SyncKey,
        0x13 FolderCreate, 0x14 FolderDelete, 0x15 FolderUpdate, 0x16 FolderSync,
        0x17 Count,
    }
    /// Code page 8, `MeetingResponse:` ([MS-ASWBXML] 2.1.2.1.9).
    8 meetingresponse "MeetingResponse" "MeetingResponse:" {
        0x05 CalendarId, 0x06 CollectionId, 0x07 MeetingResponse, 0x08 RequestId,
        0x09 Request, 0x0A Result, 0x0B Status, 0x0C UserResponse, 0x0E InstanceId,
        0x10 ProposedStartTime, 0x11 ProposedEndTime, 0x12 SendResponse,
    }
    /// Code page 9, `Tasks:` ([MS-ASWBXML] 2.1.2.1.10; names as in [MS-ASTASK]).
    9 tasks "Tasks" "Tasks:" {
        0x08 Categories, 0x09 Category, 0x0A Complete, 0x0B DateCompleted, 0x0C DueDate,
        0x0D UtcDueDate, 0x0E Importance, 0x0F Recurrence, 0x10 Type, 0x11 Start,
        0x12 Until, 0x13 Occurrences, 0x14 Interval, 0x15 DayOfMonth, 0x16 DayOfWeek,
        0x17 WeekOfMonth, 0x18 MonthOfYear, 0x19 Regenerate, 0x1A DeadOccur,
        0x1B ReminderSet, 0x1C ReminderTime, 0x1D Sensitivity, 0x1E StartDate,
        0x1F UtcStartDate, 0x20 Subject, 0x22 OrdinalDate, 0x23 SubOrdinalDate,
        0x24 CalendarType, 0x25 IsLeapMonth, 0x26 FirstDayOfWeek,
    }
    /// Code page 10, `ResolveRecipients:` ([MS-ASWBXML] 2.1.2.1.11).
    10 resolverecipients "ResolveRecipients" "ResolveRecipients:" {
        0x05 ResolveRecipients, 0x06 Response, 0x07 Status, 0x08 Type, 0x09 Recipient,
        0x0A DisplayName, 0x0B EmailAddress, 0x0C Certificates, 0x0D Certificate,
        0x0E MiniCertificate, 0x0F Options, 0x10 To, 0x11 CertificateRetrieval,
        0x12 RecipientCount, 0x13 MaxCertificates, 0x14 MaxAmbiguousRecipients,
        0x15 CertificateCount, 0x16 Availability, 0x17 StartTime, 0x18 EndTime,
        0x19 MergedFreeBusy, 0x1A Picture, 0x1B MaxSize, 0x1C Data, 0x1D MaxPictures,
    }
    /// Code page 11, `ValidateCert:` ([MS-ASWBXML] 2.1.2.1.12).
    11 validatecert "ValidateCert" "ValidateCert:" {
        0x05 ValidateCert, 0x06 Certificates, 0x07 Certificate, 0x08 CertificateChain,
        0x09 CheckCRL, 0x0A Status,
    }
    /// Code page 12, `Contacts2:` ([MS-ASWBXML] 2.1.2.1.13).
    12 contacts2 "Contacts2" "Contacts2:" {
        0x05 CustomerId, 0x06 GovernmentId, 0x07 IMAddress, 0x08 IMAddress2,
        0x09 IMAddress3, 0x0A ManagerName, 0x0B CompanyMainPhone, 0x0C AccountName,
        0x0D NickName, 0x0E MMS,
    }
    /// Code page 13, `Ping:` ([MS-ASWBXML] 2.1.2.1.14).
    13 ping "Ping" "Ping:" {
        0x05 Ping, 0x06 AutdState, 0x07 Status, 0x08 HeartbeatInterval, 0x09 Folders,
        0x0A Folder, 0x0B Id, 0x0C Class, 0x0D MaxFolders,
    }
    /// Code page 14, `Provision:` ([MS-ASWBXML] 2.1.2.1.15).
    14 provision "Provision" "Provision:" {
        0x05 Provision, 0x06 Policies, 0x07 Policy, 0x08 PolicyType, 0x09 PolicyKey,
        0x0A Data, 0x0B Status, 0x0C RemoteWipe, 0x0D EASProvisionDoc,
        0x0E DevicePasswordEnabled, 0x0F AlphanumericDevicePasswordRequired,
        0x10 RequireStorageCardEncryption, 0x11 PasswordRecoveryEnabled,
        0x13 AttachmentsEnabled, 0x14 MinDevicePasswordLength,
        0x15 MaxInactivityTimeDeviceLock, 0x16 MaxDevicePasswordFailedAttempts,
        0x17 MaxAttachmentSize, 0x18 AllowSimpleDevicePassword,
        0x19 DevicePasswordExpiration, 0x1A DevicePasswordHistory, 0x1B AllowStorageCard,
        0x1C AllowCamera, 0x1D RequireDeviceEncryption, 0x1E AllowUnsignedApplications,
        0x1F AllowUnsignedInstallationPackages, 0x20 MinDevicePasswordComplexCharacters,
        0x21 AllowWiFi, 0x22 AllowTextMessaging, 0x23 AllowPOPIMAPEmail,
        0x24 AllowBluetooth, 0x25 AllowIrDA, 0x26 RequireManualSyncWhenRoaming,
        0x27 AllowDesktopSync, 0x28 MaxCalendarAgeFilter, 0x29 AllowHTMLEmail,
        0x2A MaxEmailAgeFilter, 0x2B MaxEmailBodyTruncationSize,
        0x2C MaxEmailHTMLBodyTruncationSize, 0x2D RequireSignedSMIMEMessages,
        0x2E RequireEncryptedSMIMEMessages, 0x2F RequireSignedSMIMEAlgorithm,
        0x30 RequireEncryptionSMIMEAlgorithm, 0x31 AllowSMIMEEncryptionAlgorithmNegotiation,
        0x32 AllowSMIMESoftCerts, 0x33 AllowBrowser, 0x34 AllowConsumerEmail,
        0x35 AllowRemoteDesktop, 0x36 AllowInternetSharing,
        0x37 UnapprovedInROMApplicationList, 0x38 ApplicationName,
        0x39 ApprovedApplicationList, 0x3A Hash, 0x3B AccountOnlyRemoteWipe,
    }
    /// Code page 15, `Search:` ([MS-ASWBXML] 2.1.2.1.16).
    15 search "Search" "Search:" {
        0x05 Search, 0x07 Store, 0x08 Name, 0x09 Query, 0x0A Options, 0x0B Range,
        0x0C Status, 0x0D Response, 0x0E Result, 0x0F Properties, 0x10 Total,
        0x11 EqualTo, 0x12 Value, 0x13 And, 0x14 Or, 0x15 FreeText, 0x17 DeepTraversal,
        0x18 LongId, 0x19 RebuildResults, 0x1A LessThan, 0x1B GreaterThan, 0x1C Schema,
        0x1D Supported, 0x1E UserName, 0x1F Password, 0x20 ConversationId, 0x21 Picture,
        0x22 MaxSize, 0x23 MaxPictures,
    }
    /// Code page 16, `GAL:` ([MS-ASWBXML] 2.1.2.1.17).
    16 gal "GAL" "GAL:" {
        0x05 DisplayName, 0x06 Phone, 0x07 Office, 0x08 Title, 0x09 Company, 0x0A Alias,
        0x0B FirstName, 0x0C LastName, 0x0D HomePhone, 0x0E MobilePhone,
        0x0F EmailAddress, 0x10 Picture, 0x11 Status, 0x12 Data,
    }
    /// Code page 17, `AirSyncBase:` ([MS-ASWBXML] 2.1.2.1.18).
    17 airsyncbase "AirSyncBase" "AirSyncBase:" {
        0x05 BodyPreference, 0x06 Type, 0x07 TruncationSize, 0x08 AllOrNone, 0x0A Body,
        0x0B Data, 0x0C EstimatedDataSize, 0x0D Truncated, 0x0E Attachments,
        0x0F Attachment, 0x10 DisplayName, 0x11 FileReference, 0x12 Method,
        0x13 ContentId, 0x14 ContentLocation, 0x15 IsInline, 0x16 NativeBodyType,
        0x17 ContentType, 0x18 Preview, 0x19 BodyPartPreference, 0x1A BodyPart,
        0x1B Status, 0x1C Add, 0x1D Delete, 0x1E ClientId, 0x1F Content, 0x20 Location,
        0x21 Annotation, 0x22 Street, 0x23 City, 0x24 State, 0x25 Country,
        0x26 PostalCode, 0x27 Latitude, 0x28 Longitude, 0x29 Accuracy, 0x2A Altitude,
        0x2B AltitudeAccuracy, 0x2C LocationUri, 0x2D InstanceId,
    }
    /// Code page 18, `Settings:` ([MS-ASWBXML] 2.1.2.1.19).
    18 settings "Settings" "Settings:" {
        0x05 Settings, 0x06 Status, 0x07 Get, 0x08 Set, 0x09 Oof, 0x0A OofState,
        0x0B StartTime, 0x0C EndTime, 0x0D OofMessage, 0x0E AppliesToInternal,
        0x0F AppliesToExternalKnown, 0x10 AppliesToExternalUnknown, 0x11 Enabled,
        0x12 ReplyMessage, 0x13 BodyType, 0x14 DevicePassword, 0x15 Password,
        0x16 DeviceInformation, 0x17 Model, 0x18 IMEI, 0x19 FriendlyName, 0x1A OS,
        0x1B OSLanguage, 0x1C PhoneNumber, 0x1D UserInformation, 0x1E EmailAddresses,
        0x1F SmtpAddress, 0x20 UserAgent, 0x21 EnableOutboundSMS, 0x22 MobileOperator,
        0x23 PrimarySmtpAddress, 0x24 Accounts, 0x25 Account, 0x26 AccountId,
        0x27 AccountName, 0x28 UserDisplayName, 0x29 SendDisabled,
        0x2B RightsManagementInformation,
    }
    /// Code page 19, `DocumentLibrary:` ([MS-ASWBXML] 2.1.2.1.20).
    19 documentlibrary "DocumentLibrary" "DocumentLibrary:" {
        0x05 LinkId, 0x06 DisplayName, 0x07 IsFolder, 0x08 CreationDate,
        0x09 LastModifiedDate, 0x0A IsHidden, 0x0B ContentLength, 0x0C ContentType,
    }
    /// Code page 20, `ItemOperations:` ([MS-ASWBXML] 2.1.2.1.21).
    20 itemoperations "ItemOperations" "ItemOperations:" {
        0x05 ItemOperations, 0x06 Fetch, 0x07 Store, 0x08 Options, 0x09 Range, 0x0A Total,
        0x0B Properties, 0x0C Data, 0x0D Status, 0x0E Response, 0x0F Version,
        0x10 Schema, 0x11 Part, 0x12 EmptyFolderContents, 0x13 DeleteSubFolders,
        0x14 UserName, 0x15 Password, 0x16 Move, 0x17 DstFldId, 0x18 ConversationId,
        0x19 MoveAlways,
    }
    /// Code page 21, `ComposeMail:` ([MS-ASWBXML] 2.1.2.1.22).
    21 composemail "ComposeMail" "ComposeMail:" {
        0x05 SendMail, 0x06 SmartForward, 0x07 SmartReply, 0x08 SaveInSentItems,
        0x09 ReplaceMime, 0x0B Source, 0x0C FolderId, 0x0D ItemId, 0x0E LongId,
        0x0F InstanceId, 0x10 Mime, 0x11 ClientId, 0x12 Status, 0x13 AccountId,
        0x15 Forwardees, 0x16 Forwardee, 0x17 ForwardeeName, 0x18 ForwardeeEmail,
    }
    /// Code page 22, `Email2:` ([MS-ASWBXML] 2.1.2.1.23).
    22 email2 "Email2" "Email2:" {
        0x05 UmCallerID, 0x06 UmUserNotes, 0x07 UmAttDuration, 0x08 UmAttOrder,
        0x09 ConversationId, 0x0A ConversationIndex, 0x0B LastVerbExecuted,
        0x0C LastVerbExecutionTime, 0x0D ReceivedAsBcc, 0x0E Sender, 0x0F CalendarType,
        0x10 IsLeapMonth, 0x11 AccountId, 0x12 FirstDayOfWeek, 0x13 MeetingMessageType,
        0x15 IsDraft, 0x16 Bcc, 0x17 Send,
    }
    /// Code page 23, `Notes:` ([MS-ASWBXML] 2.1.2.1.24).
    23 notes "Notes" "Notes:" {
        0x05 Subject, 0x06 MessageClass, 0x07 LastModifiedDate, 0x08 Categories,
        0x09 Category,
    }
    /// Code page 24, `RightsManagement:` ([MS-ASWBXML] 2.1.2.1.25).
    24 rightsmanagement "RightsManagement" "RightsManagement:" {
        0x05 RightsManagementSupport, 0x06 RightsManagementTemplates,
        0x07 RightsManagementTemplate, 0x08 RightsManagementLicense, 0x09 EditAllowed,
        0x0A ReplyAllowed, 0x0B ReplyAllAllowed, 0x0C ForwardAllowed,
        0x0D ModifyRecipientsAllowed, 0x0E ExtractAllowed, 0x0F PrintAllowed,
        0x10 ExportAllowed, 0x11 ProgrammaticAccessAllowed, 0x12 Owner,
        0x13 ContentExpiryDate, 0x14 TemplateID, 0x15 TemplateName,
        0x16 TemplateDescription, 0x17 ContentOwner, 0x18 RemoveRightsManagementProtection,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_numbered_by_position_and_names_unique() {
        for (i, p) in pages().iter().enumerate() {
            assert_eq!(usize::from(p.number()), i);
            assert!(p.namespace().ends_with(':'));
            assert_eq!(&p.namespace()[..p.namespace().len() - 1], p.name());
            let mut names: Vec<_> = p.tags().iter().map(|&(_, n)| n).collect();
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len(), "duplicate name on page {}", p.name());
            let mut last = 0;
            for &(token, name) in p.tags() {
                assert!(token > last, "page {} not sorted at {name}", p.name());
                last = token;
                assert_eq!(p.tag_name(token), Some(name));
                assert_eq!(p.token(name), Some(token));
            }
        }
    }
}
