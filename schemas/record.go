package schemas

import "time"

// Record is one log line as it travels through Sluice: produced by the
// shipper (or an external producer) to <prefix>.raw.<tenant>, rewritten by the
// router to <prefix>.parsed.<tenant>, and indexed by the indexer.
//
// Field names (Go json tags and Avro field names are the same) follow the
// fluent-bit kubernetes filter so existing dashboards keep working. The Avro
// schema is logrecord.avsc (the current version; every version is in avro/);
// every change to this type needs a new schema version, as the package doc
// describes.
type Record struct {
	// ID is deterministic for a source line: a hash of (node, file identity,
	// byte offset), so a line re-shipped after a crash gets the same id.
	ID string `json:"id"`
	// Timestamp is the event time, UTC.
	Timestamp time.Time `json:"timestamp"`
	// ObservedTimestamp is when the shipper read the line, UTC.
	ObservedTimestamp time.Time `json:"observed_timestamp"`
	// Tenant is decided by the topic a record arrived on, never by this field
	// of a record read from Kafka; producers fill it in for convenience.
	Tenant string `json:"tenant"`
	// Stream is "stdout" or "stderr" (empty when unknown).
	Stream string `json:"stream"`
	// Log is the message, reassembled from partial lines, valid UTF-8.
	Log string `json:"log"`
	// Truncated is set when the line exceeded the size cap; OriginalSize is
	// then its size in bytes before truncation (0 otherwise).
	Truncated    bool  `json:"truncated"`
	OriginalSize int64 `json:"original_size"`
	// InvalidUTF8 is set when invalid UTF-8 in the line was replaced with
	// U+FFFD.
	InvalidUTF8 bool `json:"invalid_utf8"`
	// Partial is set by the shipper when a message's end never arrived (a
	// CRI partial line never followed by its final one, a docker json-file
	// entry without its trailing newline, an unterminated last line of a
	// file) and it was flushed after SLUICE_SHIPPER_PARTIAL_FLUSH_TIMEOUT;
	// Log is then whatever had arrived. Records written with schema v1 read
	// back with Partial false.
	Partial bool `json:"partial"`

	// Metadata says how complete Kubernetes is: "" when the shipper had
	// the pod's metadata (or nothing was asked of it), MetadataPartial when
	// it shipped the line with what the log file's path says only (the pod
	// was not, or not yet, in its cache, or the API server was away).
	Metadata string `json:"metadata"`

	Kubernetes Kubernetes `json:"kubernetes"`
	// Attributes are parsed fields: flattened dotted keys to typed values.
	// A value is one of nil, bool, int64, float64, string, or an array of
	// those ([]any; encoders also take []string). Arrays hold scalars only:
	// a list of objects has no flat form and stays JSON text.
	Attributes map[string]any `json:"attributes"`
	Source     Source         `json:"source"`

	// Unknown holds the fields of a record written with a schema version
	// newer than this binary's (or a registry schema with fields LogRecord
	// lacks): field name -> its value as compact JSON text. A field nested
	// in kubernetes or source is named by its dotted path
	// ("kubernetes.node_pool"). Only decoders that resolve such schemas
	// fill it (see the package doc, "Schema versions"); nil otherwise.
	//
	// What encoders do with it: JSON writes it under "unknown" (an object
	// of JSON strings, left out when empty) and DecodeJSON reads it back.
	// The Avro encoders cannot: the current schema has no slot for it, so
	// AppendAvro leaves it out and counts the record in
	// UnknownFieldsDropped. The indexer stores it under sluice.unknown.
	Unknown map[string]string `json:"unknown,omitempty"`
}

// Kubernetes is the metadata of the container that wrote a line.
type Kubernetes struct {
	NamespaceName string `json:"namespace_name"`
	PodName       string `json:"pod_name"`
	PodID         string `json:"pod_id"`
	ContainerName string `json:"container_name"`
	DockerID      string `json:"docker_id"` // the container id
	// Host is the node's name.
	Host        string            `json:"host"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	// NamespaceLabels are the labels of the pod's namespace (those the
	// shipper's allow-list lets through).
	NamespaceLabels map[string]string `json:"namespace_labels"`
	// ContainerImage is the image of the container, as the pod spec names
	// it.
	ContainerImage string `json:"container_image"`
	// Workload is the pod's owning workload.
	Workload Workload `json:"workload"`

	// avro is the Avro encoding of the fields above, when CacheEncoding
	// was called.
	avro []byte
}

// MetadataPartial is Record.Metadata for a line shipped with path-only
// Kubernetes metadata.
const MetadataPartial = "partial"

// Workload is the controller a pod belongs to, followed up its owner
// references: a Deployment (through its ReplicaSet), StatefulSet,
// DaemonSet, CronJob (through its Job), Job, or a bare ReplicaSet. Empty for
// a pod nothing owns.
type Workload struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Source says where a record was read.
type Source struct {
	// Path is the file the line was read from.
	Path string `json:"path"`
	// Offset is the byte offset of the line's first byte in that file.
	Offset int64 `json:"offset"`
	// Format is the line format that was decoded: "cri", "docker" or "raw".
	Format string `json:"format"`
	// Shipper is the version of the shipper that read it.
	Shipper string `json:"shipper"`
}
