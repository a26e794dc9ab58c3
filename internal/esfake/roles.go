package esfake

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/sluicelogs/sluice/internal/escompat"
)

// role is the part of a role body the fake checks, as Elasticsearch's
// security API would refuse a role without it.
type role struct {
	Indices []struct {
		Names      []string `json:"names"`
		Privileges []string `json:"privileges"`
	} `json:"indices"`
}

// Role returns the body of a role made through the security API.
func (s *Server) Role(name string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.roles[name]
	return r, ok
}

func (s *Server) putRole(rs *escompat.Responder, r *http.Request, name string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rs.Error(escompat.IllegalArgument("reading the body: %v", err))
		return
	}
	var ro role
	if err := json.Unmarshal(body, &ro); err != nil {
		rs.Error(escompat.NewError(http.StatusBadRequest, "parse_exception", "failed to parse role [%s]: %v", name, err))
		return
	}
	for _, ix := range ro.Indices {
		if len(ix.Names) == 0 || len(ix.Privileges) == 0 {
			rs.Error(escompat.NewError(http.StatusBadRequest, "action_request_validation_exception",
				"Validation Failed: 1: indices privileges must refer to at least one index name and one privilege;"))
			return
		}
	}
	s.mu.Lock()
	_, existed := s.roles[name]
	s.roles[name] = json.RawMessage(body)
	s.mu.Unlock()
	rs.JSON(http.StatusOK, obj{{"role", obj{{"created", !existed}}}})
}

func (s *Server) getRole(rs *escompat.Responder, name string) {
	body, ok := s.Role(name)
	if !ok {
		rs.JSON(http.StatusNotFound, obj{}) // Elasticsearch answers an unknown role with {}
		return
	}
	rs.JSON(http.StatusOK, obj{{name, body}})
}

func (s *Server) deleteRole(rs *escompat.Responder, name string) {
	s.mu.Lock()
	_, found := s.roles[name]
	delete(s.roles, name)
	s.mu.Unlock()
	status := http.StatusOK
	if !found {
		status = http.StatusNotFound
	}
	rs.JSON(status, obj{{"found", found}})
}
