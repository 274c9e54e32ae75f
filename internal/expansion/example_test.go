package expansion_test

import (
	"fmt"

	"github.com/nodekit-dev/nodekit/internal/expansion"
)

func ExampleExpand() {
	env := expansion.Map(map[string]string{"NAME": "web"})
	fmt.Println(expansion.Expand("hello $(NAME), $$(NAME) and $(OTHER)", env))
	// Output: hello web, $(NAME) and $(OTHER)
}
